fn main() -> std::process::ExitCode {
    mcp_director::cli::main()
}
