//! Gateway load benchmark (see below).

fn main() {}
