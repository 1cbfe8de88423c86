use keops::keops;

fn main() {
    let _k = keops!(KMin_j(Abs(x_i - y_j), 0));
}
