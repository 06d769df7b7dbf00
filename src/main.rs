use clap::Parser;

fn main() {
    let cli = iconnet::cli::Cli::parse();
    std::process::exit(iconnet::cli::run(cli));
}
