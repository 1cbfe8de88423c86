use keops::keops;

keops! { gauss(x_i: 3, y_j: 3, b_j: 1) = Sum_j(Exp(-SqDist(x_i, y_j)) * b_j) }

fn main() {
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let _ = gauss.eval(&x, &y);
}
