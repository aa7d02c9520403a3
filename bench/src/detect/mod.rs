//! A synthetic, deterministic request stream for the detector at campaign scale: a sybil farm
//! among benign chat users, app keys and evaluation harnesses, as real OpenAI chat bodies.
//!
//! Nothing here comes from recorded traffic or public prompt sets: the templates and vocabulary
//! are written for this generator, and every choice is drawn from a seeded RNG, so a run is the
//! same stream on every machine.

pub mod population;
pub mod prompts;
pub mod rng;
pub mod sys;
mod vocab;
