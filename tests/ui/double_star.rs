use keops::keops;

// Braces keep rustfmt from rewriting `**` as `* *`.
fn main() {
    let _k = keops! { Sum_j((x_i - y_j) ** 2) };
}
