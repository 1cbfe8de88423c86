use keops::keops;

keops! { dist(x_i: 3, y_j: 3, x_i: 3) = Sum_j(SqDist(x_i, y_j)) }

fn main() {
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let _ = dist.eval(&x, &y, &x);
}
