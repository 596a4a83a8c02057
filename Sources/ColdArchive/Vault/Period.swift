import Foundation

/// How often a series is cut, and so which periods its archives cover (FORMAT.md §5's `period` forms).
public enum Schedule: String, Sendable, Codable, CaseIterable {
    /// `YYYY-MM`
    case monthly
    /// `YYYY-Www`, ISO 8601 weeks (Monday to Sunday; week 1 holds the year's first Thursday).
    case weekly
    /// `YYYY-MM-DD`
    case daily
    /// `YYYY`
    case yearly
}

/// One period of a schedule: a calendar month, ISO 8601 week, day or year, as the header's `period`
/// field writes it (FORMAT.md §5). Comparable by start; `next` and `previous` walk the calendar.
public struct Period: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let schedule: Schedule
    /// Year, and month (1–12), ISO week (1–53) or day of year parts as the schedule needs.
    public let year: Int
    public let month: Int
    public let day: Int
    public let week: Int

    private init(_ schedule: Schedule, year: Int, month: Int = 1, day: Int = 1, week: Int = 1) {
        self.schedule = schedule
        self.year = year
        self.month = month
        self.day = day
        self.week = week
    }

    /// Parses a header `period` (`ArchiveHeader.isValidPeriod`); nil when it is not one.
    public init?(_ text: String) {
        guard ArchiveHeader.isValidPeriod(text) else { return nil }
        let b = Array(text.utf8)
        func number(_ r: Range<Int>) -> Int { b[r].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
        let year = number(0..<4)
        switch b.count {
        case 4: self.init(.yearly, year: year)
        case 8: self.init(.weekly, year: year, week: number(6..<8))
        case 7: self.init(.monthly, year: year, month: number(5..<7))
        default: self.init(.daily, year: year, month: number(5..<7), day: number(8..<10))
        }
    }

    /// The period of `schedule` that holds `date` in `timeZone`.
    public init(containing date: Date, schedule: Schedule, timeZone: TimeZone) {
        var calendar = Calendar(identifier: schedule == .weekly ? .iso8601 : .gregorian)
        calendar.timeZone = timeZone
        switch schedule {
        case .weekly:
            let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date)
            self.init(.weekly, year: c.yearForWeekOfYear!, week: c.weekOfYear!)
        default:
            let c = calendar.dateComponents([.year, .month, .day], from: date)
            self.init(schedule, year: c.year!, month: schedule == .yearly ? 1 : c.month!, day: schedule == .daily ? c.day! : 1)
        }
    }

    public var description: String {
        func pad(_ n: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        switch schedule {
        case .yearly: return pad(year, 4)
        case .monthly: return "\(pad(year, 4))-\(pad(month, 2))"
        case .weekly: return "\(pad(year, 4))-W\(pad(week, 2))"
        case .daily: return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
        }
    }

    /// The first instant of the period in `timeZone`.
    public func start(in timeZone: TimeZone) -> Date {
        var calendar = Calendar(identifier: schedule == .weekly ? .iso8601 : .gregorian)
        calendar.timeZone = timeZone
        if schedule == .weekly {
            var c = DateComponents()
            c.yearForWeekOfYear = year
            c.weekOfYear = week
            c.weekday = 2  // Monday
            return calendar.date(from: c)!
        }
        return calendar.date(from: DateComponents(year: year, month: month, day: day))!
    }

    /// The period after this one.
    public var next: Period { step(1) }
    /// The period before this one.
    public var previous: Period { step(-1) }

    private func step(_ n: Int) -> Period {
        let utc = TimeZone(identifier: "UTC")!
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = utc
        let start = self.start(in: utc)
        let moved: Date
        switch schedule {
        case .yearly: moved = calendar.date(byAdding: .year, value: n, to: start)!
        case .monthly: moved = calendar.date(byAdding: .month, value: n, to: start)!
        case .weekly: moved = calendar.date(byAdding: .day, value: 7 * n, to: start)!
        case .daily: moved = calendar.date(byAdding: .day, value: n, to: start)!
        }
        return Period(containing: moved, schedule: schedule, timeZone: utc)
    }

    public static func < (a: Period, b: Period) -> Bool {
        (a.year, a.month, a.week, a.day) < (b.year, b.month, b.week, b.day)
    }

    /// Every period from `first` to `last`, both included (empty when `last` is before `first`).
    public static func range(_ first: Period, through last: Period) -> [Period] {
        var out: [Period] = []
        var p = first
        while p <= last && out.count < 100_000 {
            out.append(p)
            p = p.next
        }
        return out
    }
}
