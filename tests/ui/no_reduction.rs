use keops::keops;

fn main() {
    let _k = keops!(Exp(-SqDist(x_i, y_j)));
}
