use keops::keops;

fn main() {
    let _k = keops!(Sum_j(Exp(Sum_j(x_i * y_j))));
}
