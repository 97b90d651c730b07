//! The OSB API through the router, as a platform sees it: instances, bindings (shared and
//! dedicated), the cross-cutting contract, input the broker refuses, network pools, the 2018
//! broker's records, and the lifecycle against SAKURA Cloud's habits.

mod bindings;
mod contract;
mod dedicated;
mod dedicated_faults;
mod input_rules;
mod instances;
mod legacy;
mod pools;
mod sakura_habits;
mod sealed_records;
