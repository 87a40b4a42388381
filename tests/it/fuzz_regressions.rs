//! The fuzz targets' inputs replayed on stable, in the suite: every seed
//! (`tests/fuzz/seeds/<target>/`) and every input that once crashed a target
//! (`tests/fuzz/regressions/<target>/`, named for what it found) goes through the same
//! `wisp::fuzzing` entry the fuzzer drives, and must return.

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(dir);
    let mut n = 0;
    for (target, run) in wisp::fuzzing::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            run(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn every_seed_goes_through_its_target() {
    let n = replay("seeds");
    assert!(n >= 40, "only {n} seeds found");
}

#[test]
fn every_input_that_once_crashed_a_target_now_returns() {
    replay("regressions");
}
