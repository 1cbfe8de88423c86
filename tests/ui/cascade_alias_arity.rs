use keops::keops;

// After a formula error in the alias syntax, the call should not add errors.
fn main() {
    let k = keops!(x = Vi(3); y = Vj(3); Sum_Reduction(Exp(-SqDist(x, z)), 0));
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let _ = k.eval(&x, &y);
}
