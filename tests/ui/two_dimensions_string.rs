use keops::keops;

// The KeOps string form: the error is located at the whole literal.
fn main() {
    let _k = keops!("x = Vi(0, 3); z = Vj(0, 4); Sum_Reduction(SqDist(x, z), 0)");
}
