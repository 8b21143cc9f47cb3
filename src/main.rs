fn main() {
    println!("workbench: skeleton");
}
