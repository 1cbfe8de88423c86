use keops::keops;

// After a formula error, a call of a gradient method should not add errors.
fn main() {
    let k = keops!(Sum_j(Exp(-SqDst(x_i, y_j))));
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let e = vec![[1.0f32; 1]; 4];
    let _ = k.grad_x(&x, &y, &e);
}
