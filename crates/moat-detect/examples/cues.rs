//! Prints the cue strengths the lexicon finds in each line of stdin (a tool for reviewing the
//! lexicon): `cargo run -p moat-detect --example cues < prompts.txt`.
use std::io::BufRead;

fn main() {
    let lexicon = moat_detect::lexicon::Lexicon::new();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let c = lexicon.scan(&line);
        println!(
            "elicit {:.2} grader {:.0} rewrite {:.0} probe {:.1}  {}",
            c.elicit,
            c.grader,
            c.rewrite,
            c.probe,
            line.chars().take(100).collect::<String>()
        );
    }
}
