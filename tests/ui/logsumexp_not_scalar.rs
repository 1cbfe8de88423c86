use keops::keops;

fn main() {
    let _k = keops!(x_i: 3; y_j: 3; LogSumExp_j(x_i - y_j));
}
