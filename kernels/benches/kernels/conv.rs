use criterion::Criterion;

pub fn benches(_c: &mut Criterion, _ctx: &oddity_kernels::Context) {}
