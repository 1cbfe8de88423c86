use keops::keops;

keops! { dist(x_i: 3, y_j: 2) = Sum_j(SqDist(x_i, y_j)) }

// After an error in the item form, uses of the kernel in other functions should not
// produce further errors.
fn main() {
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 2]; 5];
    let d = dist.eval(&x, &y).unwrap();
    println!("{}", d[0][0]);
    let e = vec![[1.0f32; 1]; 4];
    let _ = dist.grad_x(&x, &y, &e);
}
