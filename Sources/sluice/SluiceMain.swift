import ArgumentParser
import SluiceCLI

/// The `sluice` executable: the command tree lives in SluiceCLI so tests can drive it.
@main
struct SluiceMain: AsyncParsableCommand {
    static let configuration = SluiceCommand.configuration
}
