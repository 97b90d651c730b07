//! Bindings: `PUT`, `GET` and `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
//! and the binding's `last_operation`. Binds are synchronous.
//!
//! `shared` hands out the appliance's admin account, read from SAKURA Cloud each time.
//! `dedicated` records the binding (user name and sealed password) *before* creating the database
//! user, and user creation is idempotent, so a crash in between heals on the next identical PUT
//! and an unbind of a half-made binding still drops whatever was made.

use serde_json::Value;

use super::records::{
    BindingRecord, BindingState, Credential, Endpoint, InstanceRecord, InstanceState, OpState,
};
use super::{Broker, Error, LastOperation};
use crate::binder::{self, AdminAccount, Credentials, Mode, TlsMode};
use crate::engine::Engine;
use crate::sacloud::Database;
use crate::secret::Secret;
use crate::store::now_unix;

#[derive(Debug, Clone)]
pub struct BindRequest {
    pub instance_id: String,
    pub binding_id: String,
    pub service_id: String,
    pub plan_id: String,
    pub parameters: Option<Value>,
    pub bind_resource: Option<Value>,
    /// The mode when the parameters name none (a rotation keeps its predecessor's); `None`
    /// means the broker's default.
    pub mode: Option<Mode>,
}

#[derive(Debug, Clone)]
pub struct UnbindRequest {
    pub instance_id: String,
    pub binding_id: String,
    pub service_id: String,
    pub plan_id: String,
}

/// What the platform gets for a binding.
#[derive(Debug, Clone)]
pub struct BindingView {
    pub credentials: Value,
    pub parameters: Value,
    /// When the binding was made (Unix seconds), for the 2.17 `metadata`.
    pub created_at: i64,
}

/// Which attempt at a dedicated binding's user this is, which decides what a failure leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// This request has just recorded the binding: a failure removes the record again, so the
    /// platform sees a failed bind that never existed and may retry with anything.
    First,
    /// An earlier request recorded it (and may have made the user): a failure keeps the record,
    /// for the next identical PUT to finish or an unbind to clean up.
    Again,
}

#[derive(Debug, Clone)]
pub enum BindOutcome {
    /// 201: this request made the binding.
    Created(BindingView),
    /// 200: the identical binding exists.
    Exists(BindingView),
}

impl Broker {
    /// `PUT .../service_bindings/{binding_id}`.
    pub async fn bind(&self, req: BindRequest) -> Result<BindOutcome, Error> {
        let plan = self
            .catalog
            .plan(&req.service_id, &req.plan_id)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let params = self
            .catalog
            .validate_bind(plan, req.parameters.as_ref())
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let mode = params
            .mode
            .or(req.mode)
            .unwrap_or(self.settings.default_binding_mode);
        let parameters = super::provision::normalise(req.parameters.clone());
        let bind_resource = req.bind_resource.clone().unwrap_or(Value::Null);
        loop {
            let instance = self.bindable_instance(&req).await?;
            let existing = self.repo.binding(&req.instance_id, &req.binding_id).await?;
            let version = match existing {
                Some(b) if b.state != BindingState::Gone => {
                    if b.service_id != req.service_id
                        || b.plan_id != req.plan_id
                        || b.parameters != parameters
                    {
                        return Err(Error::Conflict(format!(
                            "service binding {} already exists with a different service, plan or parameters",
                            req.binding_id
                        )));
                    }
                    return self.bind_again(&instance, b).await.map(BindOutcome::Exists);
                }
                Some(tombstone) => tombstone.version,
                None => 0,
            };
            let mut record = BindingRecord {
                instance_id: req.instance_id.clone(),
                binding_id: req.binding_id.clone(),
                service_id: req.service_id.clone(),
                plan_id: req.plan_id.clone(),
                parameters: parameters.clone(),
                bind_resource: bind_resource.clone(),
                credential: Credential::Shared,
                state: if mode == Mode::Shared {
                    BindingState::Bound
                } else {
                    BindingState::Creating
                },
                created_at: now_unix(),
                version,
            };
            if mode == Mode::Shared {
                // Read the credentials before recording, so a failure leaves nothing behind.
                let db = self.appliance_of(&instance).await?;
                let view = self.shared_view(&instance, &db, &record)?;
                let ops = vec![
                    self.repo.check_instance_op(&instance),
                    self.repo.put_binding_op(&record, None)?,
                ];
                if self.repo.commit(ops).await? {
                    tracing::info!(instance_id = %req.instance_id, binding_id = %req.binding_id, "shared binding created");
                    return Ok(BindOutcome::Created(view));
                }
                continue;
            }
            let keyring = self.keyring()?;
            // Read where the database is before recording, so a SAKURA failure leaves nothing
            // behind (like a database failure below): the platform may retry with anything.
            let admin = self.admin_of(&instance).await?;
            let password = binder::generate_password();
            record.credential = Credential::Dedicated {
                username: binder::generate_username(&req.binding_id),
                sealed_password: Some(keyring.seal(
                    password.expose(),
                    &[&record.instance_id, &record.binding_id],
                )),
                endpoint: None,
            };
            let ops = vec![
                self.repo.check_instance_op(&instance),
                self.repo.put_binding_op(&record, None)?,
            ];
            if !self.repo.commit(ops).await? {
                continue;
            }
            record.version += 1;
            let view = self
                .finish_dedicated(&instance, record, password, admin, Attempt::First)
                .await?;
            tracing::info!(instance_id = %req.instance_id, binding_id = %req.binding_id, "dedicated binding created");
            return Ok(BindOutcome::Created(view));
        }
    }

    /// The instance a bind targets, if it can be bound now.
    async fn bindable_instance(&self, req: &BindRequest) -> Result<InstanceRecord, Error> {
        let id = &req.instance_id;
        let Some(instance) = self
            .instance_or_adopt(id)
            .await?
            .filter(|r| r.state != InstanceState::Gone)
        else {
            return Err(Error::NotFound(format!(
                "service instance {id} does not exist"
            )));
        };
        if instance.service_id != req.service_id || instance.plan_id != req.plan_id {
            return Err(Error::BadRequest(format!(
                "service_id and plan_id do not match service instance {id} (it has service {} and plan {})",
                instance.service_id, instance.plan_id
            )));
        }
        match instance.state {
            InstanceState::Ready => Ok(instance),
            InstanceState::Failed => Err(Error::Unprocessable(format!(
                "service instance {id} failed ({}); it cannot be bound",
                instance.operation.description
            ))),
            _ if instance.operation.state == OpState::InProgress => {
                Err(Error::Concurrency(format!(
                    "service instance {id} has an operation in progress ({:?}); bind once it has finished",
                    instance.operation.kind
                )))
            }
            _ => Err(Error::Unprocessable(format!(
                "service instance {id} cannot be bound in state {:?}",
                instance.state
            ))),
        }
    }

    /// An identical PUT for a binding that exists: answer with its credentials, finishing a
    /// half-made dedicated binding first.
    async fn bind_again(
        &self,
        instance: &InstanceRecord,
        record: BindingRecord,
    ) -> Result<BindingView, Error> {
        match (&record.credential, record.state) {
            (_, BindingState::Deleting) => Err(Error::Concurrency(format!(
                "service binding {} is being deleted",
                record.binding_id
            ))),
            (Credential::Shared, _) => {
                let db = self.appliance_of(instance).await?;
                self.shared_view(instance, &db, &record)
            }
            (
                Credential::Dedicated {
                    username, endpoint, ..
                },
                state,
            ) => {
                let password = self.open_password(&record)?;
                if state == BindingState::Bound
                    && let Some(endpoint) = endpoint
                {
                    return Ok(dedicated_view(
                        &record,
                        username,
                        &current_endpoint(instance, endpoint),
                        password,
                        &self.engine_of(instance)?,
                        self.settings.database_tls,
                    ));
                }
                let admin = self.admin_of(instance).await?;
                self.finish_dedicated(instance, record, password, admin, Attempt::Again)
                    .await
            }
        }
    }

    /// The appliance's admin account, read from SAKURA Cloud now.
    async fn admin_of(&self, instance: &InstanceRecord) -> Result<AdminAccount, Error> {
        let db = self.appliance_of(instance).await?;
        admin_account(&db, self.engine_of(instance)?, self.settings.database_tls)
    }

    /// Create (idempotently) the binding's database user with `admin` and mark the binding bound.
    async fn finish_dedicated(
        &self,
        instance: &InstanceRecord,
        mut record: BindingRecord,
        password: Secret,
        admin: AdminAccount,
        attempt: Attempt,
    ) -> Result<BindingView, Error> {
        let engine = self.engine_of(instance)?;
        let username = record
            .credential
            .username()
            .map(str::to_owned)
            .ok_or_else(|| Error::internal("dedicated binding without a user name"))?;
        let outcome = match self.reachable_in_this_mode(&admin) {
            Ok(()) => binder::create_user(&admin, &username, &password).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            if attempt == Attempt::First {
                // Leave nothing behind: the platform sees a failed bind and may simply retry.
                let _ = self.repo.delete_binding(&record).await;
            }
            return Err(bind_failure(e));
        }
        let endpoint = Endpoint {
            host: admin.host.clone(),
            port: admin.port,
            database: admin.database.clone(),
        };
        record.state = BindingState::Bound;
        if let Credential::Dedicated { endpoint: kept, .. } = &mut record.credential {
            *kept = Some(endpoint.clone());
        }
        if !self.repo.save_binding(&mut record, None).await? {
            self.settle_lost_save(&mut record, &admin, &username)
                .await?;
        }
        Ok(dedicated_view(
            &record,
            &username,
            &endpoint,
            password,
            &engine,
            self.settings.database_tls,
        ))
    }

    /// The final save lost a race. Usually another request finished the same binding (same
    /// user, same password). If a concurrent attempt failed and removed the record, the user
    /// this request made would have no record: put the record back while the instance can still
    /// be bound, else drop the user. If the binding was unbound or tombstoned with its instance
    /// meanwhile, that stands: drop the user.
    async fn settle_lost_save(
        &self,
        record: &mut BindingRecord,
        admin: &AdminAccount,
        username: &str,
    ) -> Result<(), Error> {
        let current = self
            .repo
            .binding(&record.instance_id, &record.binding_id)
            .await?;
        let changed = || {
            Error::Retry(format!(
                "service binding {} changed meanwhile; send the request again",
                record.binding_id
            ))
        };
        match current {
            Some(c)
                if c.state == BindingState::Bound && c.credential.username() == Some(username) =>
            {
                Ok(())
            }
            Some(c) if c.state == BindingState::Gone => {
                let _ = binder::drop_user(admin, username).await;
                Err(Error::Concurrency(format!(
                    "service binding {} was deleted while it was being created (unbound, or its service instance deprovisioned)",
                    record.binding_id
                )))
            }
            Some(_) => Err(changed()),
            None => {
                let instance = self
                    .repo
                    .instance(&record.instance_id)
                    .await?
                    .filter(|i| i.state == InstanceState::Ready);
                if let Some(instance) = instance {
                    record.version = 0;
                    let ops = vec![
                        self.repo.check_instance_op(&instance),
                        self.repo.put_binding_op(record, None)?,
                    ];
                    if self.repo.commit(ops).await? {
                        record.version = 1;
                        return Ok(());
                    }
                }
                let _ = binder::drop_user(admin, username).await;
                Err(changed())
            }
        }
    }

    /// `GET .../service_bindings/{binding_id}`.
    pub async fn get_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<BindingView, Error> {
        let not_found = || Error::NotFound(format!("service binding {binding_id} does not exist"));
        let record = self
            .repo
            .binding(instance_id, binding_id)
            .await?
            .ok_or_else(not_found)?;
        if record.state != BindingState::Bound {
            return Err(not_found());
        }
        let instance = self
            .repo
            .instance(instance_id)
            .await?
            .ok_or_else(not_found)?;
        // Once a deprovision has started, the appliance may already be deleted before a poll
        // tombstones the bindings: the binding is on its way out, not an upstream failure.
        if matches!(
            instance.state,
            InstanceState::Deprovisioning | InstanceState::Gone
        ) {
            return Err(Error::NotFound(format!(
                "service binding {binding_id} is being removed with service instance {instance_id}, which is being deprovisioned"
            )));
        }
        // Every arm is named: a dedicated binding never falls back to the admin account.
        match &record.credential {
            Credential::Dedicated {
                username,
                endpoint: Some(endpoint),
                ..
            } => {
                let password = self.open_password(&record)?;
                Ok(dedicated_view(
                    &record,
                    username,
                    &current_endpoint(&instance, endpoint),
                    password,
                    &self.engine_of(&instance)?,
                    self.settings.database_tls,
                ))
            }
            Credential::Dedicated { endpoint: None, .. } => Err(Error::internal(format!(
                "dedicated binding {binding_id} is bound but its record has no endpoint"
            ))),
            Credential::Shared => {
                let db = self.appliance_of(&instance).await?;
                self.shared_view(&instance, &db, &record)
            }
        }
    }

    /// `DELETE .../service_bindings/{binding_id}`: drop a dedicated user (keeping the data), then
    /// leave a tombstone.
    pub async fn unbind(&self, req: UnbindRequest) -> Result<(), Error> {
        let gone = || Error::Gone(format!("service binding {} does not exist", req.binding_id));
        let Some(mut record) = self.repo.binding(&req.instance_id, &req.binding_id).await? else {
            // The 2018 broker recorded no bindings (they used the appliance's own login), so an
            // adopted instance's unknown binding was one of its: nothing is left to remove.
            let legacy = self
                .instance_or_adopt(&req.instance_id)
                .await?
                .is_some_and(|i| i.legacy && i.state != InstanceState::Gone);
            if legacy {
                tracing::info!(instance_id = %req.instance_id, binding_id = %req.binding_id, "unbound a binding of the 2018 broker");
                return Ok(());
            }
            return Err(gone());
        };
        if record.state == BindingState::Gone {
            return Err(gone());
        }
        if record.service_id != req.service_id || record.plan_id != req.plan_id {
            return Err(Error::BadRequest(format!(
                "service_id and plan_id do not match service binding {}",
                req.binding_id
            )));
        }
        if let Some(username) = record.credential.username().map(str::to_owned) {
            if record.state != BindingState::Deleting {
                record.state = BindingState::Deleting;
                if !self.repo.save_binding(&mut record, None).await? {
                    return Err(Error::Retry(format!(
                        "service binding {} changed meanwhile; retry",
                        req.binding_id
                    )));
                }
            }
            self.drop_dedicated_user(&req.instance_id, &username)
                .await?;
        }
        record.state = BindingState::Gone;
        record.credential.forget_password();
        let expires = now_unix() + self.settings.tombstone_ttl;
        if !self.repo.save_binding(&mut record, Some(expires)).await? {
            // Someone else finished the unbind (or the deprovision tombstoned it) meanwhile.
            tracing::info!(binding_id = %req.binding_id, "binding was removed concurrently");
        }
        tracing::info!(instance_id = %req.instance_id, binding_id = %req.binding_id, "binding deleted");
        Ok(())
    }

    async fn drop_dedicated_user(&self, instance_id: &str, username: &str) -> Result<(), Error> {
        let Some(instance) = self.repo.instance(instance_id).await? else {
            return Ok(());
        };
        let Some(id) = instance
            .appliance_id
            .filter(|_| instance.state != InstanceState::Gone)
        else {
            return Ok(());
        };
        let db = match self.sakura.for_effects().read(&instance.zone, id).await {
            Ok(db) => db,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => {
                return Err(Error::upstream_from(
                    format!("could not read appliance {id} from SAKURA Cloud: {e}"),
                    e,
                ));
            }
        };
        let admin = admin_account(&db, self.engine_of(&instance)?, self.settings.database_tls)?;
        if self.reachable_in_this_mode(&admin).is_err() {
            // No user can have been made there (binds are refused the same way).
            return Ok(());
        }
        binder::drop_user(&admin, username)
            .await
            .map_err(bind_failure)
    }

    /// `GET .../service_bindings/{binding_id}/last_operation` (binds are synchronous).
    pub async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<LastOperation, Error> {
        let record = self
            .repo
            .binding(instance_id, binding_id)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("service binding {binding_id} does not exist"))
            })?;
        let (state, description) = match record.state {
            BindingState::Bound => (OpState::Succeeded, "binding created"),
            BindingState::Gone => (OpState::Succeeded, "binding deleted"),
            BindingState::Creating => (OpState::InProgress, "creating the database user"),
            BindingState::Deleting => (OpState::InProgress, "dropping the database user"),
        };
        Ok(LastOperation::new(
            state,
            description.into(),
            super::records::OpKind::Provision,
        ))
    }

    /// In fake mode a simulated appliance exists only where a real server backs it, on this
    /// machine: refuse other addresses without sending anything to them.
    fn reachable_in_this_mode(&self, admin: &AdminAccount) -> Result<(), binder::Error> {
        let loopback = admin
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
            || admin.host == "localhost";
        if self.settings.loopback_databases_only && !loopback {
            return Err(binder::Error::Unreachable {
                address: admin.address(),
                cause: "in fake mode only appliances on 127.0.0.1 are backed by a real database server (SIMULATOR_MARIADB_URL / SIMULATOR_POSTGRES_URL); this one is simulated only".into(),
            });
        }
        Ok(())
    }

    fn keyring(&self) -> Result<&crate::binder::crypto::Keyring, Error> {
        self.keyring.as_ref().ok_or_else(|| {
            Error::Unprocessable("dedicated bindings need OSB_ENCRYPTION_KEYS on the broker; ask for mode `shared` or configure a key".into())
        })
    }

    fn open_password(&self, record: &BindingRecord) -> Result<Secret, Error> {
        let Credential::Dedicated {
            sealed_password: Some(sealed),
            ..
        } = &record.credential
        else {
            return Err(Error::internal("dedicated binding without a password"));
        };
        self.keyring()?
            .open(sealed, &[&record.instance_id, &record.binding_id])
            .map_err(|e| Error::internal_from("binding password cannot be decrypted", e))
    }

    fn engine_of(&self, instance: &InstanceRecord) -> Result<Engine, Error> {
        self.catalog
            .plan(&instance.service_id, &instance.plan_id)
            .map(|p| p.engine)
            .map_err(|e| {
                Error::internal_from("the stored instance names a plan the catalog lacks", e)
            })
    }

    async fn appliance_of(&self, instance: &InstanceRecord) -> Result<Database, Error> {
        let id = instance
            .appliance_id
            .ok_or_else(|| Error::internal("ready instance without an appliance"))?;
        // A bind (or unbind) is a side effect the platform waits for: its read is too.
        self.sakura
            .for_effects()
            .read(&instance.zone, id)
            .await
            .map_err(|e| {
                Error::upstream_from(
                    format!("could not read appliance {id} from SAKURA Cloud: {e}"),
                    e,
                )
            })
    }

    fn shared_view(
        &self,
        instance: &InstanceRecord,
        db: &Database,
        record: &BindingRecord,
    ) -> Result<BindingView, Error> {
        let engine = self.engine_of(instance)?;
        let admin = admin_account(db, engine, self.settings.database_tls)?;
        let credentials = Credentials {
            host: admin.host,
            port: admin.port,
            database: admin.database,
            username: admin.username,
            ssl_required: admin.tls.requires_tls(),
            password: admin.password,
        };
        Ok(BindingView {
            credentials: credentials.to_json(engine),
            parameters: record.parameters.clone(),
            created_at: record.created_at,
        })
    }
}

/// Where a bound dedicated binding logs in now: the endpoint stored when its user was made, on
/// the instance's current port, which a `port` update after the bind may have changed.
fn current_endpoint(instance: &InstanceRecord, stored: &Endpoint) -> Endpoint {
    Endpoint {
        port: instance.params.port.unwrap_or(stored.port),
        ..stored.clone()
    }
}

fn dedicated_view(
    record: &BindingRecord,
    username: &str,
    endpoint: &Endpoint,
    password: Secret,
    engine: &Engine,
    tls: TlsMode,
) -> BindingView {
    let credentials = Credentials {
        host: endpoint.host.clone(),
        port: endpoint.port,
        database: endpoint.database.clone(),
        username: username.to_owned(),
        password,
        ssl_required: tls.requires_tls(),
    };
    BindingView {
        credentials: credentials.to_json(*engine),
        parameters: record.parameters.clone(),
        created_at: record.created_at,
    }
}

/// The appliance's admin account, as SAKURA Cloud reports it.
fn admin_account(db: &Database, engine: Engine, tls: TlsMode) -> Result<AdminAccount, Error> {
    let host = db
        .ip_address
        .clone()
        .ok_or_else(|| Error::upstream(format!("appliance {} reports no IP address yet", db.id)))?;
    let s = &db.settings;
    Ok(AdminAccount {
        engine: db.engine.unwrap_or(engine),
        host,
        port: s.port.unwrap_or(engine.default_port()),
        database: s.default_user.clone(),
        username: s.default_user.clone(),
        password: s.user_password.clone(),
        tls,
    })
}

fn bind_failure(e: binder::Error) -> Error {
    let description = match &e {
        binder::Error::Unreachable { address, cause } => format!(
            "the broker could not connect to the database at {address} ({cause}). Dedicated bindings need network reach from the broker to the appliance; bind with the parameter {{\"mode\": \"shared\"}} to get the appliance's own account instead"
        ),
        other => format!("creating the database user failed: {other}"),
    };
    Error::upstream_from(description, e)
}
