use keops::keops;

// Undeclared widths are const generics: x and y must have the same one.
fn main() {
    let k = keops!(Sum_j(SqDist(x_i, y_j)));
    let x3 = vec![[0.0f32; 3]; 4];
    let y2 = vec![[1.0f32; 2]; 5];
    let _ = k.eval(&x3, &y2);
}
