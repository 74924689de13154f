//! Plans: a proposed task shown before it runs.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, now};
use crate::store::{Plan, PlanStore, StoreError};

#[async_trait]
impl PlanStore for SqlStore {
    async fn create_plan(&self, p: &Plan) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (id, platform, workspace, channel, thread, trigger_ts, requester, repo,
                base_ref, attempts, spec_json, plan, revises, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&p.id)
        .bind(&p.platform)
        .bind(&p.workspace)
        .bind(&p.channel)
        .bind(&p.thread)
        .bind(&p.trigger_ts)
        .bind(&p.requester)
        .bind(&p.repo)
        .bind(&p.base_ref)
        .bind(p.attempts.map(i64::from))
        .bind(&p.spec_json)
        .bind(&p.plan)
        .bind(&p.revises)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        sqlx::query("SELECT * FROM plans WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                Ok(Plan {
                    id: r.try_get("id")?,
                    platform: r.try_get("platform")?,
                    workspace: r.try_get("workspace")?,
                    channel: r.try_get("channel")?,
                    thread: r.try_get("thread")?,
                    trigger_ts: r.try_get("trigger_ts")?,
                    requester: r.try_get("requester")?,
                    repo: r.try_get("repo")?,
                    base_ref: r.try_get("base_ref")?,
                    attempts: r.try_get::<Option<i64>, _>("attempts")?.map(|a| a as u32),
                    spec_json: r.try_get("spec_json")?,
                    plan: r.try_get("plan")?,
                    revises: r.try_get("revises")?,
                })
            })
            .transpose()
    }
}
