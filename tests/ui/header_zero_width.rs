use keops::keops;

// A width of 0 in the item form's argument list.
keops! { dist(x_i: 0, y_j: 3) = Sum_j(SqDist(x_i, y_j)) }

fn main() {
    let x = vec![[0.0f32; 3]; 4];
    let _ = dist.eval(&x, &x);
}
