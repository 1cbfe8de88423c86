use keops::keops;

// Rust's lexer rejects unbalanced parentheses in tokens; in a string they reach the macro.
fn main() {
    let _k = keops!("Sum_j(Exp(-SqDist(x_i, y_j))");
}
