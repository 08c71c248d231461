// Erasing positions, so that trees can be compared by structure alone (the printer round trip, tests).

extension Expr {
    /// The same tree with every position set to `SourcePosition.none`.
    public func withoutPositions() -> Expr {
        Expr(kind.withoutPositions(), at: .none)
    }
}

extension Expr.Kind {
    func withoutPositions() -> Expr.Kind {
        switch self {
        case .literal, .column, .interval: return self
        case .unary(let op, let operand): return .unary(op, operand.withoutPositions())
        case .binary(let op, let left, let right): return .binary(op, left.withoutPositions(), right.withoutPositions())
        case .isNull(let operand, let negated): return .isNull(operand.withoutPositions(), negated: negated)
        case .inList(let operand, let list, let negated):
            return .inList(operand.withoutPositions(), list.map { $0.withoutPositions() }, negated: negated)
        case .like(let operand, let pattern, let negated):
            return .like(operand.withoutPositions(), pattern: pattern.withoutPositions(), negated: negated)
        case .caseWhen(let operand, let branches, let otherwise):
            return .caseWhen(
                operand: operand?.withoutPositions(),
                branches: branches.map { CaseBranch(when: $0.when.withoutPositions(), then: $0.then.withoutPositions()) },
                otherwise: otherwise?.withoutPositions())
        case .cast(let operand, let type): return .cast(operand.withoutPositions(), type)
        case .call(var call):
            call.arguments = call.arguments.map { $0.withoutPositions() }
            return .call(call)
        }
    }
}

extension Interval {
    func withoutPositions() -> Interval { Interval(milliseconds: milliseconds) }
}

extension Name {
    func withoutPositions() -> Name { Name(text) }
}

extension Query {
    /// The same query with every position set to `SourcePosition.none`.
    public func withoutPositions() -> Query {
        var query = self
        query.position = .none
        query.sink = sink.withoutPositions()
        query.source = source.withoutPositions()
        query.select = select.map { item in
            var item = item
            item.position = .none
            item.alias = item.alias?.withoutPositions()
            if case .expression(let expr) = item.kind { item.kind = .expression(expr.withoutPositions()) }
            return item
        }
        query.unnest = unnest.map {
            Unnest(array: $0.array.withoutPositions(), alias: $0.alias.withoutPositions())
        }
        query.filter = filter?.withoutPositions()
        query.groupBy = groupBy.map { group in
            GroupBy(keys: group.keys.map { $0.withoutPositions() }, window: group.window.map { window in
                let kind: WindowSpec.Kind
                switch window.kind {
                case .tumble(let size): kind = .tumble(size: size.withoutPositions())
                case .hop(let slide, let size): kind = .hop(slide: slide.withoutPositions(), size: size.withoutPositions())
                case .session(let gap): kind = .session(gap: gap.withoutPositions())
                }
                return WindowSpec(kind, time: window.time.withoutPositions())
            })
        }
        query.having = having?.withoutPositions()
        query.emit = emit.map { emit in
            switch emit.mode {
            case .final, .changes: return Emit(emit.mode)
            case .every(let interval): return Emit(.every(interval.withoutPositions()))
            }
        }
        query.options = QueryOptions(
            allowedLateness: options.allowedLateness?.withoutPositions(),
            idleTimeout: options.idleTimeout?.withoutPositions(),
            lateRecords: options.lateRecords?.withoutPositions())
        return query
    }
}
