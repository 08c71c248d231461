import Testing

@testable import SluiceCLI

@Suite("connection options")
struct ConnectionOptionsTests {
    @Test("brokers given before the subcommand move after it; everything else stays in order")
    func movesLeadingBrokers() {
        #expect(SluiceCommand.movingConnectionOptions(["-b", "h:1", "topic", "list"]) == ["topic", "list", "-b", "h:1"])
        #expect(SluiceCommand.movingConnectionOptions(["--brokers", "h:1,h:2", "consume", "t", "-e"])
                == ["consume", "t", "-e", "--brokers", "h:1,h:2"])
        #expect(SluiceCommand.movingConnectionOptions(["--brokers=h:1", "group", "list"]) == ["group", "list", "--brokers=h:1"])
        // After the subcommand nothing moves (ArgumentParser handles it); a dangling flag is left for it to report.
        #expect(SluiceCommand.movingConnectionOptions(["topic", "list", "-b", "h:1"]) == ["topic", "list", "-b", "h:1"])
        #expect(SluiceCommand.movingConnectionOptions(["-b"]) == ["-b"])
        #expect(SluiceCommand.movingConnectionOptions([]) == [])
    }
}
