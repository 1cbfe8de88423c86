// A `View` cannot be built around its constructors' checks.
fn main() {
    let data = [1.0f32; 4];
    let _ = keops::View {
        data: &data[..],
        rows: 8,
        cols: 1,
        row_stride: 1,
        col_stride: 1,
        resident: None,
    };
}
