import ArgumentParser
import SluiceCLI

/// The `sluice` executable: the command tree lives in SluiceCLI so tests can drive it.
@main
enum SluiceMain {
    static func main() async {
        // kcat and rpk users put the brokers before the command; ArgumentParser wants them after it.
        let arguments = SluiceCommand.movingConnectionOptions(Array(CommandLine.arguments.dropFirst()))
        await SluiceCommand.main(arguments)
    }
}
