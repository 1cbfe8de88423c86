use keops::keops;

// After a formula error, a call passing the parameter `g` should not add errors.
fn main() {
    let k = keops!(Sum_j(Exp(-g * SqDst(x_i, y_j)) * b_j));
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let b = vec![[1.0f32; 1]; 5];
    let _ = k.eval(&x, &y, &b, &[[1.0f32]]);
}
