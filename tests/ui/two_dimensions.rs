use keops::keops;

fn main() {
    let _k = keops!(x_i: 3; x_j: 4; Sum_j(SqDist(x_i, x_j)));
}
