use keops::keops;

fn main() {
    let k = keops!(x_i: 3; y_j: 3; Sum_j(SqDist(x_i, y_j)));
    let x = vec![[0i32; 3]; 4];
    let y = vec![[1i32; 3]; 5];
    let _ = k.eval(&x, &y);
}
