import SluiceSQL
import SluiceTestSupport
import Testing

/// Random ASTs printed and parsed back, and mutated queries that must give a value or an `SQLError`.
/// Seeds come from `SLUICE_TEST_SEED` when set; every failure message names the seed to replay it.
@Suite("SQL round trip and fuzz")
struct RoundTripTests {
    @Test("parse(print(ast)) == ast for random ASTs")
    func randomRoundTrip() throws {
        var random = SeededRandom.fromEnvironment()
        let seed = random.seed
        for index in 0..<3_000 {
            var generator = QueryGenerator(random: random)
            let query = generator.query()
            random = generator.random
            let text = query.description
            do {
                let parsed = try Query.parse(text)
                #expect(parsed.withoutPositions() == query, "seed \(seed), case \(index):\n\(text)")
                #expect(parsed.description == text, "seed \(seed), case \(index)")
            } catch {
                Issue.record("seed \(seed), case \(index): \(error)\n\(text)")
            }
        }
    }

    @Test("mutated queries: a value or an SQLError, never a crash or a hang")
    func fuzz() throws {
        var random = SeededRandom.fromEnvironment()
        let seed = random.seed
        var corpus = Self.seeds
        var generator = QueryGenerator(random: random)
        for _ in 0..<20 { corpus.append(generator.query().description) }
        random = generator.random
        var accepted = 0
        for index in 0..<5_000 {
            let original = corpus[random.int(0...(corpus.count - 1))]
            let mutated = Self.mutate(original, random: &random, corpus: corpus)
            do {
                let query = try Query.parse(mutated)
                accepted += 1
                // Whatever is accepted prints to something that parses to the same tree.
                let again = try Query.parse(query.description)
                #expect(again.withoutPositions() == query.withoutPositions(), "seed \(seed), case \(index): \(mutated)")
            } catch {  // typed throws: `error` is an SQLError
                #expect(error.line >= 1 && error.column >= 1, "seed \(seed), case \(index): \(error) for \(mutated)")
                #expect(!error.message.isEmpty)
            }
        }
        #expect(accepted > 0, "seed \(seed): no mutation survived; the fuzz is not reaching deep")
    }

    static let seeds = [
        architectureExampleQuery,
        "INSERT INTO wc SELECT word, COUNT(*) FROM lines, UNNEST(SPLIT(_value, ' ')) AS word GROUP BY word EMIT CHANGES",
        """
        insert into "out" select case when a.b is not null then cast(a.b as double) else -1.5e3 end as x,
          count(distinct c) from src -- comment
        where c not in ('x', 'y''z') and d not like '%a' or not e
        group by c, hop(proctime(), interval '1' minute, interval 5 minutes)
        having count(distinct c) % 2 = 0
        emit every interval '100' milliseconds
        with (allowed_lateness = interval '2' seconds, late_records = 'late', idle_timeout = interval '1' hour);
        """,
    ]

    static let fragments = [
        "(", ")", ",", ".", "'", "\"", "--", "*", "-", "NOT", "NULL", "AS", "FROM", "WHERE", "GROUP BY", "INTERVAL",
        "'1'", "SECOND", "TUMBLE(", "CASE", "END", "WHEN", "IN (", "0", "9999999999999999999999", "1e", "é", "\n", ";",
        "EMIT", "EVERY", "WITH (", "=", "<>", "!", "#", "\u{0}", "))))))))", "((((((((",
    ]

    /// One to four random edits: delete, insert, duplicate or swap tokens (space-separated words), or bytes.
    static func mutate(_ text: String, random: inout SeededRandom, corpus: [String]) -> String {
        var words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        var bytes = Array(text.utf8)
        let byteLevel = random.chance(0.3)
        for _ in 0..<random.int(1...4) {
            if byteLevel {
                guard !bytes.isEmpty else { break }
                let i = random.int(0...(bytes.count - 1))
                switch random.int(0...3) {
                case 0: bytes.remove(at: i)
                case 1: bytes.insert(UInt8(random.int(0...127)), at: i)
                case 2: bytes.insert(contentsOf: Array(fragments[random.int(0...(fragments.count - 1))].utf8), at: i)
                default: bytes.swapAt(i, random.int(0...(bytes.count - 1)))
                }
            } else {
                guard !words.isEmpty else { break }
                let i = random.int(0...(words.count - 1))
                switch random.int(0...4) {
                case 0: words.remove(at: i)
                case 1: words.insert(fragments[random.int(0...(fragments.count - 1))], at: i)
                case 2: words.insert(words[random.int(0...(words.count - 1))], at: i)
                case 3: words.swapAt(i, random.int(0...(words.count - 1)))
                default:
                    let other = corpus[random.int(0...(corpus.count - 1))].split(separator: " ").map(String.init)
                    if !other.isEmpty { words[i] = other[random.int(0...(other.count - 1))] }
                }
            }
        }
        // Invalid UTF-8 from byte edits is repaired by String(decoding:), as any caller's String would be.
        return byteLevel ? String(decoding: bytes, as: UTF8.self) : words.joined(separator: " ")
    }
}

/// Random well-formed ASTs (positions `.none`), covering every node kind and clause.
struct QueryGenerator {
    var random: SeededRandom

    mutating func pick<T>(_ items: [T]) -> T { items[random.int(0...(items.count - 1))] }

    static let plainNames = ["a", "user", "amount", "_key", "_value", "_timestamp", "_partition", "_offset", "ts",
                             "order", "final", "second", "tumble", "Mixed_Case", "x1"]
    static let oddNames = ["with spaces", "select", "from", "a\"quote", "1abc", "é", "", "-", "NULL", "it's"]

    mutating func name() -> String {
        random.chance(0.8) ? pick(Self.plainNames) : pick(Self.oddNames.filter { !$0.isEmpty })
    }

    mutating func topic() -> Name {
        Name(pick(["clicks", "out", "a.b", "x-y", "T_1", "2024-events", "late"]))
    }

    mutating func interval() -> Interval {
        let unit = pick([Int64(1), 1_000, 60_000, 3_600_000, 86_400_000])
        return Interval(milliseconds: Int64(random.int(0...100_000)) * unit)
    }

    mutating func literal() -> Literal {
        switch random.int(0...5) {
        case 0: return .integer(Int64(random.int(0...Int.max)))
        case 1: return .decimal(pick([0.5, 1.0, 1e-5, 123.456, 1e300, 2.5e20, Double(random.int(0...1_000_000)) / 64]))
        case 2: return .string(pick(["", "x", "it's", "two\nlines", "'' ''", "--not a comment", "é ü", "%a_"]))
        case 3: return .boolean(random.chance(0.5))
        case 4: return .null
        default: return .integer(Int64(random.int(0...10)))
        }
    }

    mutating func expr(depth: Int) -> Expr {
        if depth <= 0 || random.chance(0.25) {
            switch random.int(0...2) {
            case 0: return Expr(.literal(literal()))
            case 1: return Expr(.interval(milliseconds: interval().milliseconds))
            default: return Expr(.column((0..<random.int(1...3)).map { _ in name() }))
            }
        }
        let d = depth - 1
        switch random.int(0...9) {
        case 0: return Expr(.unary(pick(UnaryOperator.allCases), expr(depth: d)))
        case 1, 2: return Expr(.binary(pick(BinaryOperator.allCases), expr(depth: d), expr(depth: d)))
        case 3: return Expr(.isNull(expr(depth: d), negated: random.chance(0.5)))
        case 4: return Expr(.inList(expr(depth: d), (0..<random.int(1...3)).map { _ in expr(depth: d) }, negated: random.chance(0.5)))
        case 5: return Expr(.like(expr(depth: d), pattern: expr(depth: d), negated: random.chance(0.5)))
        case 6:
            return Expr(.caseWhen(
                operand: random.chance(0.5) ? expr(depth: d) : nil,
                branches: (0..<random.int(1...3)).map { _ in CaseBranch(when: expr(depth: d), then: expr(depth: d)) },
                otherwise: random.chance(0.5) ? expr(depth: d) : nil))
        case 7: return Expr(.cast(expr(depth: d), pick(SQLType.allCases)))
        default:
            switch random.int(0...3) {
            case 0: return Expr(.call(FunctionCall(name: "COUNT", arguments: [], isStar: true)))
            case 1: return Expr(.call(FunctionCall(name: "PROCTIME", arguments: [])))
            case 2: return Expr(.call(FunctionCall(name: pick(["COUNT", "SUM", "MIN"]), arguments: [expr(depth: d)], isDistinct: true)))
            default:
                return Expr(.call(FunctionCall(name: pick(["lower", "CONCAT", "coalesce", "f_1", "SPLIT"]),
                                               arguments: (0..<random.int(0...3)).map { _ in expr(depth: d) })))
            }
        }
    }

    mutating func query() -> Query {
        let depth = random.int(0...5)
        var query = Query(
            sink: topic(),
            select: (0..<random.int(1...4)).map { _ in
                if random.chance(0.1) { return SelectItem(.wildcard) }
                return SelectItem.expression(expr(depth: depth), alias: random.chance(0.5) ? Name(name()) : nil)
            },
            source: topic())
        if random.chance(0.3) { query.unnest = Unnest(array: expr(depth: 2), alias: Name(name())) }
        if random.chance(0.6) { query.filter = expr(depth: depth) }
        if random.chance(0.6) {
            var window: WindowSpec?
            if random.chance(0.7) {
                let kind: WindowSpec.Kind
                switch random.int(0...2) {
                case 0: kind = .tumble(size: interval())
                case 1: kind = .hop(slide: interval(), size: interval())
                default: kind = .session(gap: interval())
                }
                window = WindowSpec(kind, time: random.chance(0.3) ? Expr(.call(FunctionCall(name: "PROCTIME", arguments: []))) : expr(depth: 1))
            }
            let keyCount = window == nil ? random.int(1...3) : random.int(0...3)
            query.groupBy = GroupBy(keys: (0..<keyCount).map { _ in expr(depth: 2) }, window: window)
        }
        if random.chance(0.3) { query.having = expr(depth: depth) }
        if random.chance(0.6) { query.emit = Emit(pick([.final, .changes, .every(interval())])) }
        if random.chance(0.5) {
            query.options = QueryOptions(
                allowedLateness: random.chance(0.5) ? interval() : nil,
                idleTimeout: random.chance(0.5) ? interval() : nil,
                lateRecords: random.chance(0.5) ? topic() : nil)
        }
        return query
    }
}
