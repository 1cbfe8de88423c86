use keops::keops;

// After a formula error, an unannotated result used further on adds no error.
fn main() {
    let k = keops!(Sum_j(Exp(-SqDst(x_i, y_j))));
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let a = k.eval(&x, &y).unwrap();
    println!("{} {}", a[0][0], k.formula());
}
