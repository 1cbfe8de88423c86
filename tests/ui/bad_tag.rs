use keops::keops;

fn main() {
    let _k = keops!(x = Vi(1); y = Vj(1); Sum_Reduction(x * y, 2));
}
