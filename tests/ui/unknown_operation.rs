use keops::keops;

fn main() {
    let k = keops!(Sum_j(Exp(-SqDst(x_i, y_j))));
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[1.0f32; 3]; 5];
    let _: Vec<[f32; 1]> = k.eval(&x, &y).unwrap();
}
