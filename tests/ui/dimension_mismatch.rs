use keops::keops;

// The formula error is the only error: the call below type-checks against a stub.
keops! { dist(x_i: 3, y_j: 2) = Sum_j(SqDist(x_i, y_j)) }

fn main() {
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 2]; 5];
    let d: Vec<[f32; 1]> = dist.eval(&x, &y).unwrap();
    println!("{}", d[0][0]);
}
