use keops::keops;

fn main() {
    let _k = keops!(x_i: 3; Sum_j(Elem(x_i, 3) * y_j));
}
