use keops::keops;

fn main() {
    let _k = keops!(Sum_j(SqDist(x_i)));
}
