//! The OpenAPI document of `GET /v1/openapi.json`, built from the route table
//! ([`super::routes::ROUTES`]) that the router is built from, with the request bodies'
//! schemas derived from their Rust types (utoipa).

use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, Content, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder,
    Paths, Required, ResponseBuilder, Type,
};
use utoipa::PartialSchema;

use super::console::LoginForm;
use super::routes::{
    Action, ClearBody, ConfigCheckBody, ConfigPushBody, MaintenanceBody, SwitchoverBody, ROUTES,
};

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for route in ROUTES {
        let mut operation = OperationBuilder::new()
            .operation_id(Some(format!("{:?}", route.action).to_lowercase()))
            .summary(Some(route.summary))
            .response("200", ResponseBuilder::new().description("done"));
        for part in route.path.split('/') {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
        }
        if route.action == Action::Events {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("since")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some("entries with a greater id (default 0: from the start)"))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer))),
            );
        }
        operation = with_body(operation, route.action);
        if let Some(role) = route.need {
            operation = operation
                .description(Some(format!(
                    "Needs a bearer token of role {role} or above, or the web console's \
                     session cookie of such a user (then a POST also needs the header \
                     `X-Tandem-Console: 1` or the node's own Origin)."
                )))
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .security(SecurityRequirement::new("console", Vec::<String>::new()))
                .response("401", ResponseBuilder::new().description("no token, or a bad one"))
                .response("403", ResponseBuilder::new().description("the role is too low"))
                .response("429", ResponseBuilder::new().description("too many requests"));
        }
        if route.action.node_only() {
            operation = signed_by_a_node(operation);
        }
        let method = match route.method {
            "GET" => HttpMethod::Get,
            _ => HttpMethod::Post,
        };
        paths.add_path_operation(route.path, vec![method], operation.build());
    }
    let bearer = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
    // The cookie's name ends with the node's API port (`__Host-tandem-7400`).
    let cookie = SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        "__Host-tandem-PORT",
        "The web console's session (POST /login); PORT is the node's API port",
    )));
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tandem")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The HTTPS API of a tandem node")),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("bearer", bearer)
                .security_scheme("console", cookie)
                .build(),
        ))
        .build()
}

/// The route's request body, if it takes one.
fn with_body(operation: OperationBuilder, action: Action) -> OperationBuilder {
    let json = |schema, required| {
        RequestBodyBuilder::new()
            .required(Some(required))
            .content("application/json", Content::new(Some(schema)))
            .build()
    };
    let body = match action {
        Action::Switchover => json(SwitchoverBody::schema(), Required::False),
        Action::Maintenance => json(MaintenanceBody::schema(), Required::True),
        Action::Clear => json(ClearBody::schema(), Required::False),
        Action::ConfigPush => json(ConfigPushBody::schema(), Required::True),
        Action::ConfigCheck => json(ConfigCheckBody::schema(), Required::True),
        // The contract crate's type (schemars): its schema is a file of its own.
        Action::ConfigEdit => json(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "`{\"generation\", \"edits\": [...]}`: docs/schema/config-edit.schema.json",
                ))
                .into(),
            Required::True,
        ),
        Action::Login => RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content("application/x-www-form-urlencoded", Content::new(Some(LoginForm::schema())))
            .build(),
        _ => return operation,
    };
    operation.request_body(Some(body))
}

/// A route only nodes call: how its calls are signed, and its 401.
fn signed_by_a_node(operation: OperationBuilder) -> OperationBuilder {
    operation
        .description(Some(
            "Called by the other nodes of the cluster only: headers X-Tandem-Node (the \
             sender), X-Tandem-Time (seconds since the epoch, within 120 s of this node's \
             clock) and X-Tandem-Signature (hex HMAC-SHA256 with the cluster key of method, \
             path, sender, time and the body's SHA-256); no user token."
                .to_string(),
        ))
        .response("401", ResponseBuilder::new().description("not signed by a node (E1307)"))
}
