use keops::keops;

fn main() {
    let k = keops!(x_i: 3; y_j: 2; Sum_j(Exp(-SqDist(x_i, y_j))));
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 2]; 5];
    let _ = k.eval(&x, &y);
}
