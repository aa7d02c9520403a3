//! Prints the features of every line of a trace read from stdin, one line each (a tool for
//! checking that a change to extraction keeps its output identical):
//! `zcat trace.jsonl.gz | cargo run --release -p moat-detect --example dump_features > f.txt`.
use std::io::{BufRead, Write};

fn main() {
    let extractor = moat_detect::features::Extractor::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let r = match moat_detect::trace::Record::parse(&line, &extractor) {
            Ok(r) => format!("{:?}", r.features),
            Err(e) => format!("error: {e}"),
        };
        if writeln!(out, "{r}").is_err() {
            return;
        }
    }
}
