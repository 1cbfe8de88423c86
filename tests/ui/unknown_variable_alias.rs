use keops::keops;

fn main() {
    let _k = keops!(x = Vi(3); y = Vj(3); Sum_Reduction(Exp(-SqDist(x, z)), 0));
}
