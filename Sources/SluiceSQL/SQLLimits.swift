/// Bounds on what the SQL front end accepts, so no input can exhaust memory or the stack.
public enum SQLLimits {
    /// The longest query text accepted, in UTF-8 bytes.
    public static let queryBytesMax = 64 * 1024
    /// The deepest nesting of expressions (parentheses, operators, calls) accepted.
    public static let expressionDepthMax = 256
}

extension SQLLimits {
    /// The longest topic name accepted in a query, in UTF-8 bytes: the broker's own limit
    /// (`TopicRegistry.topicNameBytesMax`), so a query never names a topic the broker cannot create.
    public static let topicNameBytesMax = 200
}

/// Words that cannot be bare identifiers; write them "double-quoted" to use them as names.
/// Window functions, types, interval units and EMIT modes are not reserved: they are recognised by place.
public enum SQLKeywords {
    /// The reserved words, upper-case.
    public static let reserved: Set<String> = [
        "INSERT", "INTO", "SELECT", "AS", "FROM", "UNNEST", "WHERE", "GROUP", "BY", "HAVING", "EMIT", "WITH",
        "AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST",
        "TRUE", "FALSE", "DISTINCT", "INTERVAL",
    ]
}

extension SQLLimits {
    /// The most arguments a variadic function (CONCAT, COALESCE) or an IN list accepts.
    public static let functionArgumentsMax = 1_024
    /// The most columns a SELECT list, GROUP BY or a query's distinct JSON fields may have.
    public static let columnsMax = 1_024
}
