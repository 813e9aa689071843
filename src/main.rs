use std::process::ExitCode;

fn main() -> ExitCode {
    chaintrace::cli::main()
}
