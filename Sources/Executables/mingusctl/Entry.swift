import ArgumentParser
import MingusCtl

@main
enum Entry {
    static func main() async {
        let command: any AsyncParsableCommand.Type = Mingusctl.self
        await command.main()
    }
}
