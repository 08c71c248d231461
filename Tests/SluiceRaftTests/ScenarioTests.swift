import Testing

@testable import SluiceRaft

/// Data-driven scenarios: each script reads as the story it checks, with the Raft paper section cited.
/// Every script runs with the same fixed seed; they elect with explicit `campaign` steps, so the
/// randomized timeouts never decide an outcome.
@Suite struct ScenarioTests {
    static let scripts: [(name: String, script: String)] = [
        ("basic election", Scenarios.basicElection),
        ("pre-vote keeps a rejoining node from disrupting", Scenarios.preVoteRejoin),
        ("log divergence repaired with fast back-off", Scenarios.divergenceRepair),
        ("figure 8: no commit of an old-term entry by counting replicas", Scenarios.figure8),
        ("leadership transfer", Scenarios.leadershipTransfer),
        ("snapshot catch-up after retention", Scenarios.snapshotCatchUp),
        ("check-quorum step-down", Scenarios.checkQuorum),
        ("crash loses only what was not persisted", Scenarios.crashRestart),
    ]

    @Test(arguments: scripts.map(\.name))
    func scenario(_ name: String) {
        guard let script = Self.scripts.first(where: { $0.name == name })?.script else { return }
        var runner = ScenarioRunner()
        runner.run(script)
        #expect(runner.failures.isEmpty, "scenario '\(name)':\n\(runner.failures.joined(separator: "\n"))")
    }
}
