cfg_rt! {
    pub fn spawn() {}
    fn café