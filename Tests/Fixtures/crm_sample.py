#!/usr/bin/env python3
"""Generates a deterministic, CRM-like data set: CSV exports, JSON service tickets, binary attachments
(about two thirds incompressible, like scanned PDFs and photos), a SQLite database and many small files.

    crm_sample.py --out DIR [--size 20MB] [--seed 1]

The same seed and size always give the same bytes, so archives and benchmarks can be compared.
Only the Python standard library is used.
"""
import argparse
import json
import os
import random
import sqlite3

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus", "Jürgen", "Zoë"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth", "Müller", "Øster"]
CITIES = ["Berlin", "Zürich", "Paris", "Lyon", "Boston", "Austin", "Kraków", "São Paulo", "Tokyo", "Oslo"]
SUBJECTS = ["Invoice missing", "Cannot log in", "Refund request", "Delivery late", "Change of address", "Contract renewal"]
STATUSES = ["open", "pending", "resolved", "closed"]


def parse_size(text):
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    text = text.strip().upper()
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def write_customers(path, rng, budget):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("customer_id,first_name,last_name,email,city,created,lifetime_value\n")
        i = 0
        while f.tell() < budget:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            f.write(f"{i},{first},{last},{first.lower()}.{i}@example.com,{rng.choice(CITIES)},"
                    f"2019-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.randint(0, 500000) / 100:.2f}\n")
            i += 1
    return i


def write_orders(path, rng, budget, customers):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("order_id,customer_id,date,sku,quantity,amount_eur\n")
        i = 0
        while f.tell() < budget:
            f.write(f"{100000 + i},{rng.randrange(max(customers, 1))},2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                    f"SKU-{rng.randint(1000, 9999)},{rng.randint(1, 20)},{rng.randint(100, 99999) / 100:.2f}\n")
            i += 1


def write_tickets(directory, rng, budget, customers):
    os.makedirs(directory, exist_ok=True)
    used, n = 0, 0
    while used < budget:
        month = os.path.join(directory, f"2026-{(n % 12) + 1:02d}")
        os.makedirs(month, exist_ok=True)
        ticket = {
            "id": f"T-{n:06d}",
            "customer_id": rng.randrange(max(customers, 1)),
            "status": rng.choice(STATUSES),
            "subject": rng.choice(SUBJECTS),
            "messages": [{"from": rng.choice(["customer", "agent"]), "text": " ".join(rng.choice(SUBJECTS) for _ in range(rng.randint(3, 12)))}
                         for _ in range(rng.randint(1, 6))],
        }
        data = json.dumps(ticket, ensure_ascii=False, indent=1).encode("utf-8")
        with open(os.path.join(month, f"T-{n:06d}.json"), "wb") as f:
            f.write(data)
        used += len(data)
        n += 1
    return n


def write_attachments(directory, rng, budget):
    os.makedirs(directory, exist_ok=True)
    used, n = 0, 0
    while used < budget:
        size = min(rng.randint(20_000, 600_000), budget - used) or 1
        name = os.path.join(directory, f"scan-{n:05d}.{rng.choice(['pdf', 'jpg', 'png'])}")
        if n % 3 == 2:  # one in three compresses well (forms, mostly white space)
            block = bytes(rng.getrandbits(8) for _ in range(256)) + bytes(3840)
            data = (block * (size // len(block) + 1))[:size]
        else:
            data = rng.randbytes(size)
        with open(name, "wb") as f:
            f.write(data)
        used += size
        n += 1


def write_database(path, rng, rows):
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, notes TEXT)")
    db.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?)",
                   ((i, f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"contact{i}@example.com", rng.choice(CITIES),
                     rng.choice(SUBJECTS)) for i in range(rows)))
    db.commit()
    db.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", default="20MB", help="approximate total size, e.g. 20MB, 1GB")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    total = parse_size(args.size)
    rng = random.Random(args.seed)
    out = args.out
    os.makedirs(os.path.join(out, "exports"), exist_ok=True)
    customers = write_customers(os.path.join(out, "exports", "customers.csv"), rng, total * 15 // 100)
    write_orders(os.path.join(out, "exports", "orders.csv"), rng, total * 15 // 100, customers)
    write_tickets(os.path.join(out, "tickets"), rng, total * 10 // 100, customers)
    write_attachments(os.path.join(out, "attachments"), rng, total * 50 // 100)
    os.makedirs(os.path.join(out, "db"), exist_ok=True)
    write_database(os.path.join(out, "db", "contacts.sqlite"), rng, max(100, total * 10 // 100 // 80))
    os.makedirs(os.path.join(out, "archive-notes", "empty"), exist_ok=True)
    with open(os.path.join(out, "archive-notes", "README.txt"), "w", encoding="utf-8") as f:
        f.write("Generated sample CRM data (not real people).\n")
    link = os.path.join(out, "archive-notes", "customers-latest.csv")
    if not os.path.lexists(link):
        os.symlink("../exports/customers.csv", link)


if __name__ == "__main__":
    main()
