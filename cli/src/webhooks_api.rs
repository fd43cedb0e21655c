//! The `/webhooks` calls of [`ApiClient`] (CONTRACT §10).

use fleet_protocol::api::List;
use fleet_protocol::events::{NewWebhook, WebhookCreated, WebhookDelivery, WebhookInfo};
use fleet_protocol::paths;
use reqwest::Method;

use crate::ApiClient;
use crate::client::ClientResult;

impl ApiClient {
    /// `POST /webhooks`: the secret comes back only now.
    pub async fn add_webhook(&self, url: &str, events: &[String]) -> ClientResult<WebhookCreated> {
        let body = NewWebhook { url: url.to_owned(), events: events.to_vec() };
        Self::decode(self.request(Method::POST, paths::WEBHOOKS).json(&body).send().await?).await
    }

    pub async fn list_webhooks(&self, cursor: Option<&str>) -> ClientResult<List<WebhookInfo>> {
        Self::decode(self.request(Method::GET, paths::WEBHOOKS).query(&[("cursor", cursor)]).send().await?).await
    }

    pub async fn get_webhook(&self, id: &str) -> ClientResult<WebhookInfo> {
        Self::decode(self.request(Method::GET, &paths::webhook(id)).send().await?).await
    }

    /// Newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> ClientResult<List<WebhookDelivery>> {
        let limit = limit.map(|l| l.to_string());
        let query = [("limit", limit.as_deref()), ("cursor", cursor)];
        Self::decode(self.request(Method::GET, &paths::webhook_deliveries(id)).query(&query).send().await?).await
    }

    pub async fn remove_webhook(&self, id: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &paths::webhook(id)).send().await?).await?;
        Ok(())
    }
}
