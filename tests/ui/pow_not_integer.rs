use keops::keops;

fn main() {
    let _k = keops!(Sum_j(Pow(x_i - y_j, 1.5)));
}
