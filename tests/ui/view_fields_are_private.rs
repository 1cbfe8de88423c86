// A `View`'s shape cannot be changed around its constructors' checks.
fn main() {
    let data = [1.0f32; 4];
    let mut v = keops::View::row_major(&data, 4, 1).unwrap();
    v.rows = 8;
}
