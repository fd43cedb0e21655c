//! Per-device isolation for the embedded broker (CONTRACT §4), as in-process rmqtt hooks:
//! devices log in with username = client id = device id and password = token (checked
//! against the registry); a last will only on the device's own `presence`; a device may
//! subscribe only to its own `commands` and the trust announcement (`{root}/trust`) and
//! publish only its own `status` and `presence`. Operator accounts (`op:{name}`, CONTRACT
//! §10) follow [`Account`]'s rules. A device that presented a certificate the server
//! signed (see [`super::cert_logins`]) logs in with no password, with username = client id
//! = the certificate's device. The server's own client logs in with a credential
//! generated at start and may do everything (rmqtt skips the ACL hooks for superusers).

use std::sync::{Arc, Weak};

use fleet_protocol::topic::Topics;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, ConnectInfo, LastWill, PublishAclResult, SubscribeAclResult};

use super::account::Account;
use crate::device_ca::ClientCertificate;
use crate::device_tokens::DeviceTokens;
use crate::store::Store;
use crate::token::hash_token;

/// Who may use the broker.
#[derive(Debug)]
pub struct Access {
    /// Weak: the broker's context never lets go of its hooks, and must not keep the
    /// database pool (and its connections) alive after the server stops.
    pub store: Weak<dyn Store>,
    /// Device tokens verified a moment ago, shared with the HTTP routes.
    pub tokens: Arc<DeviceTokens>,
    pub topics: Topics,
    /// Client certificates of open mqtts:// connections.
    pub cert_logins: Arc<super::CertLogins>,
    pub server_username: String,
    pub server_password: String,
}

impl Access {
    /// A device's last will only on its own presence; an operator account has none.
    fn will_allowed(&self, account: &Account, connect: &ConnectInfo) -> bool {
        let topic = match connect.last_will() {
            None => return true,
            Some(LastWill::V3(w)) => w.topic.to_string(),
            Some(LastWill::V5(w)) => w.topic.to_string(),
        };
        matches!(account, Account::Device(device) if topic == self.topics.presence(device))
    }

    async fn authenticate(&self, connect: &ConnectInfo) -> AuthResult {
        if let Some(cert) = self.cert_logins.get(connect.id()) {
            return self.authenticate_certificate(connect, &cert).await;
        }
        let (Some(username), Some(password)) = (connect.username(), connect.password()) else {
            return AuthResult::NotAuthorized;
        };
        let password = String::from_utf8_lossy(password);
        if **username == *self.server_username {
            return if password == self.server_password {
                AuthResult::Allow(true, None)
            } else {
                AuthResult::BadUsernameOrPassword
            };
        }
        let Some(account) = Account::parse(username) else {
            return AuthResult::BadUsernameOrPassword;
        };
        if **connect.client_id() != *account.client_id() || !self.will_allowed(&account, connect) {
            return AuthResult::NotAuthorized;
        }
        let Some(store) = self.store.upgrade() else {
            return AuthResult::NotAuthorized;
        };
        match self.tokens.owner(store.as_ref(), &hash_token(&password)).await {
            Ok(owner) if account.owns(owner.as_ref()) => AuthResult::Allow(false, None),
            Ok(_) => AuthResult::BadUsernameOrPassword,
            Err(e) => {
                tracing::error!("broker authentication: {e}");
                AuthResult::NotAuthorized
            }
        }
    }

    /// A client with a verified certificate: it must be one the server signed, not revoked
    /// nor expired, and the username and client id must both be its device.
    async fn authenticate_certificate(&self, connect: &ConnectInfo, cert: &ClientCertificate) -> AuthResult {
        let Some(store) = self.store.upgrade() else {
            return AuthResult::NotAuthorized;
        };
        let device = match crate::device_ca::device_of(store.as_ref(), &cert.0, crate::clock::now_ms()).await {
            Ok(Some(device)) => device,
            Ok(None) => return AuthResult::NotAuthorized,
            Err(e) => {
                tracing::error!("broker authentication: {e}");
                return AuthResult::NotAuthorized;
            }
        };
        let named = connect.username().is_some_and(|u| **u == *device.as_str());
        let account = Account::Device(device.clone());
        if !named || &**connect.client_id() != device.as_str() || !self.will_allowed(&account, connect) {
            return AuthResult::NotAuthorized;
        }
        AuthResult::Allow(false, None)
    }

    /// The account a non-superuser session belongs to.
    fn account_of(username: Option<&rmqtt::types::UserName>) -> Option<Account> {
        Account::parse(username?)
    }
}

/// The hook handler registered for authentication and both ACL checks.
#[derive(Debug)]
pub struct Hooks(pub Arc<Access>);

#[async_trait::async_trait]
impl Handler for Hooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(connect) => {
                let result = self.0.authenticate(connect).await;
                if !matches!(result, AuthResult::Allow(..)) {
                    tracing::info!(client = %connect.client_id(), "broker refused a connection");
                }
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let allowed = Access::account_of(session.id.username.as_ref())
                    .is_some_and(|a| a.may_subscribe(&self.0.topics, &subscribe.topic_filter));
                if allowed {
                    (true, acc)
                } else {
                    let deny = SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized);
                    (false, Some(HookResult::SubscribeAclResult(deny)))
                }
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let allowed = Access::account_of(session.id.username.as_ref())
                    .is_some_and(|a| a.may_publish(&self.0.topics, &publish.inner.topic));
                if allowed {
                    (true, acc)
                } else {
                    tracing::debug!(topic = %publish.inner.topic, "broker dropped a publish outside the device's topics");
                    (false, Some(HookResult::PublishAclResult(PublishAclResult::rejected(false, None))))
                }
            }
            _ => (true, acc),
        }
    }
}
